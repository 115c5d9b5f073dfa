"""One module per external data format (pvlib iotools style)."""
