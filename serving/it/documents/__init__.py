"""Document management API: upload (bytes only), list, erase with verification."""
