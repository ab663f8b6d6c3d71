"""The daily mail: templates, signed links, messages, transports and the sender."""
