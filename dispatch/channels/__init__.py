"""How alerts reach phones: the socket, Web Push, SMS and voice calls, and the ladder between them.

An alert planned is not an alert received: only a receipt from the phone marks it `delivered`, and
until one comes the ladder tries the next channel. Each channel is an adapter behind the small
interface in `base.py`; adapters that are not configured are simply absent.
"""
