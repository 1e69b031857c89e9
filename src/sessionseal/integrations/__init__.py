"""Drop-in session stores of agent SDKs, backed by a sessionseal vault (docs/integrations/).

Each adapter is a module of its own, behind an extra that installs its SDK, on one shared core
(``_core``).  The Claude and OpenAI adapters import nothing of their SDK when imported (their
store protocols are duck-typed); the Google ADK one subclasses ADK's abstract
``BaseSessionService``, so it imports ADK.
"""
