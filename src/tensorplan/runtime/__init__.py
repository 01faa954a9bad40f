"""The runtime: Runtime, ICudaEngine and IExecutionContext."""
