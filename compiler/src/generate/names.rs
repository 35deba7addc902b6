//! Stable names derived from event names: file slugs and TypeScript
//! identifiers. The checker rejects events whose derived names collide.

/// The file name stem for an event: `Order Completed` -> `order-completed`.
pub fn file_slug(event: &str) -> String {
    let mut out = String::new();
    for c in event.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            current.push(c);
        } else if !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// A PascalCase TypeScript identifier: `Order Completed` -> `OrderCompleted`.
pub fn pascal(name: &str) -> String {
    let mut out: String = words(name)
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'E');
    }
    out
}

/// A camelCase TypeScript function name: `Order Completed` -> `orderCompleted`.
pub fn camel(name: &str) -> String {
    let pascal = pascal(name);
    let mut chars = pascal.chars();
    let mut out = match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    };
    if RESERVED.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// Words JavaScript reserves, which cannot name a function.
const RESERVED: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(file_slug("Order Completed"), "order-completed");
        assert_eq!(file_slug("  Café -- Visited! "), "café-visited");
        assert_eq!(pascal("Order Completed"), "OrderCompleted");
        assert_eq!(pascal("3D model viewed"), "E3DModelViewed");
        assert_eq!(pascal("product_added"), "ProductAdded");
        assert_eq!(camel("Order Completed"), "orderCompleted");
        assert_eq!(camel("Delete"), "delete_");
    }
}
