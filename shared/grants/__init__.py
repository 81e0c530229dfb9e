"""Tenant isolation: granted execution resources and the plan a task runs."""
