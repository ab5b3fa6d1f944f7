"""The web front door: the gateway's ChatService over HTTP/JSON and Server-Sent Events
(transcoded from the protos' google.api.http rules), an OpenAI-compatible chat endpoint, and the
OpenAPI document. A thin ASGI service in front of the gateway: it holds no state of its own."""
