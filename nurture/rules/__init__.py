"""Rules the engine applies, pure (no store): matching, schedules, WhatsApp's window, contacts, step progress."""
