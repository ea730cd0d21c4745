"""What tests and benchmarks build on: the model card's reference scorer, random-weight models of the real
architecture, and a sidecar started as a child process. Nothing here is used when serving."""
