"""AZR's task environment: the six prompt forms, parsing, validation, verification, buffers."""
