"""The engine: a configuration compiled into a plan, applied to a dataset at every depth.

Also what the engine writes beside its actions (the de-identification record, UID and patient
mappings) and what undoes one of them (decrypt).
"""
