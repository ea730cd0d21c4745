"""The sidecar's HTTP routes, one module per resource; each only turns HTTP into a service call and back."""
