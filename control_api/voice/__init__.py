"""Programmable voice: numbers, TwiML and the Calls resource at run time."""
