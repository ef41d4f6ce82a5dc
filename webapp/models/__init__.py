from webapp.models.catalog import Category, Item
from webapp.models.visitors import EventType, Interaction, RateLimitCounter, Visitor

__all__ = ["Category", "EventType", "Interaction", "Item", "RateLimitCounter", "Visitor"]
