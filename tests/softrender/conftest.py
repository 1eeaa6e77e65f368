"""Shared fixtures for the softrender tests."""
