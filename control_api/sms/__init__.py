"""SMS: segments, the message service, carriers (SIP MESSAGE, SMPP) and messaging TwiML."""
