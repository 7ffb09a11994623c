"""Rendering: data in, text out. terminal: the tables the command line prints."""
