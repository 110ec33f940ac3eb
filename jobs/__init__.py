"""The jobs process: APScheduler glue, a Redis lock per job, a recorded run per firing."""
