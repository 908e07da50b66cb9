"""Tests of the phone simulator's engine and its fake of Twilio's REST API."""
