"""One home per wire format: its schemas, requests, answers, streams and error shape, read and written."""
