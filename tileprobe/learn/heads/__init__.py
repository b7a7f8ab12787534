"""learn/heads"""
