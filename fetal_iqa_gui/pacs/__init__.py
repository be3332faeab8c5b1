"""DICOM networking: sending results to a clinic's archive (PACS) and receiving sweeps from the
ultrasound machine. Qt-free: the command line and the window both call it.

- `archive`: where an archive is (AE titles, host, port, TLS), C-ECHO, and why an association failed;
- `outbox`: what is to be sent, kept on disk until the archive has said it stored it;
- `send`: the queue sent, as a generator of progress, with retries;
- `listen`: a C-STORE receiver that writes each series into a worklist folder once it is complete.
"""
