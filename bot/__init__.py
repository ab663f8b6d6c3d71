"""paperboy's Discord side (slash commands, channel feeds). Empty until the bot issue lands."""
