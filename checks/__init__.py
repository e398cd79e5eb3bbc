"""The deploy gates. Each decides from inputs it is given (no I/O) and returns a GateResult:
pass, wait, or block with a reason a person can act on. The pipeline fetches the inputs."""
