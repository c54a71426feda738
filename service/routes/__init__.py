"""The service's areas, one router each: session, search, videos, cameras."""
