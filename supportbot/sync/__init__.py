"""Web sync: a help center on a website becomes a collection, and stays in step with it.

`supportbot ingest https://help.example.com/sitemap.xml` (or a start URL to crawl, or a Zendesk
Guide help center) fetches the pages politely (robots.txt, a rate and a concurrency, conditional
requests), sends each page's raw HTML with its canonical URL to the retriever (which extracts the
main content), and remembers what it fetched in DATA_DIR/sync/COLLECTION.json, so `supportbot sync`
fetches again only what changed and removes what the site no longer has.

Modules: `urls` (canonical URLs, document ids, scope), `guard` (no loopback or private addresses
unless allowed, checked at every connection), `fetch` (the polite HTTP client: robots.txt, rate,
limits, charsets), `sitemap`, `pages` (links and canonical URL from HTML), `zendesk` (the Help
Center API importer), `state`, `engine` (one sync), `sink` (the one place documents go to the
retriever)."""
