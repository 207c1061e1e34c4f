"""The four services and the plumbing they share (`services.shared`)."""
