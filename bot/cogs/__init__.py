"""One cog per area of the bot; `Paperboy.setup_hook` loads them all."""

from paperboy_bot.cogs.delivery import Delivery
from paperboy_bot.cogs.feeds import FeedCommands
from paperboy_bot.cogs.mail import Email
from paperboy_bot.cogs.papers import Papers
from paperboy_bot.cogs.topics import Topics

COGS = (Topics, Email, Delivery, Papers, FeedCommands)
