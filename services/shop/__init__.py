"""The demo shop: the sample help center's company (Lumio) as a small HTTP API on a real SQLite
database: orders with items, statuses and tracking numbers, subscriptions and returns, seeded with
a few customers. The sample actions (supportbot/sample/actions.yaml) call it; in production the
company's own API takes its place. Entry point: `supportbot-shop` or `python -m services.shop`."""
