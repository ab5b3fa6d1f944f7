"""Actions on the customer's own account: declared in YAML (declarations), imported from OpenAPI
(openapi), run for the authenticated customer only (identity), chosen by example requests
(routing), their parameters filled by pattern and then by the constrained generator (slots),
confirmed before any change (pending), called with idempotency, timeouts, safe-only retries and a
circuit breaker (executor), and answered only with fields the declaration allows, cited
(replies).

Nothing here needs the chat turn or a model: the turn's action stage (next session) wires these
parts together; see README "Actions (foundation)"."""
