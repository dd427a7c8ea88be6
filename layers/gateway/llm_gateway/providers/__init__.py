"""Adapters to model providers; the only code that talks to models."""
