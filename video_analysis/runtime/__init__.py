"""Where things run and live: embedded PostgreSQL, the state folder, settings, object stores, keys."""
