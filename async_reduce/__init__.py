"""Request coalescing for asyncio."""
