"""医保影像云 sandbox."""
