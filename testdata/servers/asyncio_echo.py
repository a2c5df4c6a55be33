"""A plain asyncio stream echo (RFC 862): every chunk is written back as it
arrives; the client's EOF closes the connection.

Usage: python3 asyncio_echo.py PORT
"""
import asyncio
import sys


async def echo(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(echo, '127.0.0.1', port)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1])))
