//! The Lambda functions' code: built for provided.al2023 (x86_64, glibc 2.34), zipped reproducibly and addressed by content.
