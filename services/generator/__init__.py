"""Generator service: grounded, cited answers streamed from vLLM."""
