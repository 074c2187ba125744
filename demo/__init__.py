"""A small fake tenant website that embeds the booking widget with the real snippet."""
