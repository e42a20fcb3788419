"""AI drafts (issue #17, docs/ai-drafts.md): the ``llm`` drafter and what keeps it safe.

- ``prompt``: system instructions per form, the context as JSON data, the answer's schema;
- ``language``: the lead's language (py3langid);
- ``guards``: named rules every answer must pass, else the template draft is used;
- ``budget``: the daily token budget, shared by all processes through the database;
- ``drafter``: ``LlmDrafter``, the floor (template draft) on any failure or timeout;
- ``actions``: the operator's "Regenerate" and "Use template";
- ``sandbox``: an OpenAI-compatible Chat Completions server for development and tests.
"""
