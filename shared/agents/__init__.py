"""Agent business rules: keys, registration, liveness, long-poll waiting, claims, results,
lease reaping and job dispatch. Functions in ``functions/http/agents.py`` and
``functions/agent_timers.py`` stay thin and call these modules.
"""
