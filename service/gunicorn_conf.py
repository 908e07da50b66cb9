"""gunicorn's settings for the web server, shared by `callflow run` and the Procfile's web line.

The bind address and the number of workers are given on the command line.
"""

# Threads, because the console's warn/end requests call Twilio's REST API, which in simulator
# mode is this same server.
worker_class = "gthread"
threads = 4

accesslog = "-"
# The path without its query string or referrer: the call log's filters carry phone numbers and
# names, which must not reach the logs. %(M)s is the time taken, in milliseconds.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
