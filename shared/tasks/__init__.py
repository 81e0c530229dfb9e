"""The task pipeline's business rules: requests → tasks → queue → outcome."""
