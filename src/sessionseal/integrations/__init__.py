"""Drop-in session stores of agent SDKs, backed by a sessionseal vault (docs/integrations/).

Each adapter is a module of its own, behind an extra that installs its SDK; none imports the
SDK when it is imported (the SDKs' store protocols are duck-typed).
"""
