"""One cog per area of the bot; `Paperboy.setup_hook` loads them all."""

from bot.cogs.delivery import Delivery
from bot.cogs.feeds import FeedCommands
from bot.cogs.mail import Email
from bot.cogs.papers import Papers
from bot.cogs.topics import Topics

COGS = (Topics, Email, Delivery, Papers, FeedCommands)
