"""`supportbot tune`: a LoRA adapter for the generator, learnt from the company's own help center,
golden set and reviewed replies (RAFT-style), registered for a collection only when an
evaluation gate says it answers better than the base model."""
