"""One chat turn as named stages over one context (`TurnContext`), in the order `chat_stages`
declares
(pipeline/turns.py, which also runs them):

    [identify] -> open_session -> rewrite -> route -> [act] -> retrieve -> reuse -> answer -> [cite_case]
        -> decide_handoff -> record

(identify, act and cite_case only when account actions are configured; an action that answers routes the turn
to ACTION, which skips retrieve to decide_handoff. A message with a case question and a policy question
stays the bot's: act streams the action's reply, the help center answers the policy part, and cite_case
numbers the action's records after the articles.)

Each stage is a module here with one class: it reads and fills the context and streams the
turn's events (`domain.TurnEvent`). A stage runs for the routes it names (the route stage decides
who answers: the bot, a person asked for, or a person who has the conversation already); a stage
marked `always` also runs when an earlier one failed or the customer went away. A new stage is a
new module and one `Step` in `chat_stages`. Errors are raised as `ServiceError`s and mapped to gRPC
statuses in one place (`supportbot.core.errors.ErrorMappingInterceptor`).
"""
