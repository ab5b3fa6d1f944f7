"""One chat turn as named stages over one context (`TurnContext`), in the order `chat_stages`
declares
(pipeline/turns.py, which also runs them):

    [identify] -> open_session -> rewrite -> route -> [act] -> retrieve -> reuse -> answer -> decide_handoff -> record

(identify and act only when account actions are configured; an action that answers routes the turn to ACTION,
which skips retrieve to decide_handoff.)

Each stage is a module here with one class: it reads and fills the context and streams the
turn's events (`domain.TurnEvent`). A stage runs for the routes it names (the route stage decides
who answers: the bot, a person asked for, or a person who has the conversation already); a stage
marked `always` also runs when an earlier one failed or the customer went away. A new stage is a
new module and one `Step` in `chat_stages`. Errors are raised as `ServiceError`s and mapped to gRPC
statuses in one place (`supportbot.core.errors.ErrorMappingInterceptor`).
"""
