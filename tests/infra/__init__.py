"""Checks of the dev stack (docker-compose, Dockerfile) and the EMR bootstrap."""
