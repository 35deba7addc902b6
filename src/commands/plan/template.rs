//! What a template change does to resources and IAM permissions, read from the two templates.
