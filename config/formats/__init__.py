"""Our date formats, ahead of Django's locale ones (FORMAT_MODULE_PATH in settings)."""
