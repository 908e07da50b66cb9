"""A stand-in for Twilio: places calls, interprets TwiML and acts on REST requests."""
