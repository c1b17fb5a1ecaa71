// NettyPeer is the Netty 4.1 side of framed's interop tests. Its frames
// have a 2-byte tag, then a 3-byte big-endian length that counts the whole
// frame (tag and length included), then the body: Netty's
// LengthFieldBasedFrameDecoder(BIG_ENDIAN, max, 2, 3, -5, 0, true), or
// framed.Format{LengthOffset: 2, HeaderSize: 3, BigEndian: true,
// LengthAdjust: -5}.
//
//   java -cp netty-all.jar NettyPeer.java server
//       listens on 127.0.0.1:0, prints "LISTEN host:port", and answers every
//       frame with tag+1 and the body reversed.
//   java -cp netty-all.jar NettyPeer.java client PORT SIZE...
//       sends one frame of each SIZE (tag 7) in a single write, checks the
//       replies, prints "OK" and exits 0, or prints "FAIL ..." and exits 1.
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import java.net.InetSocketAddress;
import java.nio.ByteOrder;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public class NettyPeer {
    static final int MAX = 1 << 20;

    static LengthFieldBasedFrameDecoder decoder() {
        return new LengthFieldBasedFrameDecoder(ByteOrder.BIG_ENDIAN, MAX, 2, 3, -5, 0, true);
    }

    static byte[] pattern(int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (i * 7 + (i >> 8));
        return b;
    }

    static void writeFrame(ByteBuf out, int tag, byte[] body) {
        out.writeShort(tag);
        out.writeMedium(5 + body.length);
        out.writeBytes(body);
    }

    static byte[] reversed(byte[] b) {
        byte[] r = new byte[b.length];
        for (int i = 0; i < b.length; i++) r[i] = b[b.length - 1 - i];
        return r;
    }

    public static void main(String[] args) throws Exception {
        EventLoopGroup group = new NioEventLoopGroup(1);
        try {
            if (args[0].equals("server")) {
                server(group);
            } else {
                System.exit(client(group, Integer.parseInt(args[1]), args));
            }
        } finally {
            group.shutdownGracefully(0, 0, TimeUnit.SECONDS);
        }
    }

    static void server(EventLoopGroup group) throws Exception {
        ServerBootstrap b = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
            .childHandler(new ChannelInitializer<SocketChannel>() {
                @Override protected void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(decoder(), new SimpleChannelInboundHandler<ByteBuf>() {
                        @Override protected void channelRead0(ChannelHandlerContext ctx, ByteBuf frame) {
                            int tag = frame.readUnsignedShort();
                            int length = frame.readUnsignedMedium();
                            byte[] body = new byte[frame.readableBytes()];
                            frame.readBytes(body);
                            if (length != 5 + body.length) throw new IllegalStateException("length " + length);
                            ByteBuf out = ctx.alloc().buffer();
                            writeFrame(out, tag + 1, reversed(body));
                            ctx.writeAndFlush(out);
                        }
                    });
                }
            });
        Channel ch = b.bind("127.0.0.1", 0).sync().channel();
        InetSocketAddress addr = (InetSocketAddress) ch.localAddress();
        System.out.println("LISTEN 127.0.0.1:" + addr.getPort());
        System.out.flush();
        ch.closeFuture().sync(); // until the test kills this process
    }

    static int client(EventLoopGroup group, int port, String[] args) throws Exception {
        LinkedBlockingQueue<byte[]> replies = new LinkedBlockingQueue<>();
        Bootstrap b = new Bootstrap().group(group).channel(NioSocketChannel.class)
            .handler(new ChannelInitializer<SocketChannel>() {
                @Override protected void initChannel(SocketChannel ch) {
                    ch.pipeline().addLast(decoder(), new SimpleChannelInboundHandler<ByteBuf>() {
                        @Override protected void channelRead0(ChannelHandlerContext ctx, ByteBuf frame) {
                            byte[] whole = new byte[frame.readableBytes()];
                            frame.readBytes(whole);
                            replies.add(whole);
                        }
                    });
                }
            });
        Channel ch = b.connect("127.0.0.1", port).sync().channel();
        ByteBuf out = Unpooled.buffer();
        for (int i = 2; i < args.length; i++) writeFrame(out, 7, pattern(Integer.parseInt(args[i])));
        ch.writeAndFlush(out).sync();
        for (int i = 2; i < args.length; i++) {
            byte[] got = replies.poll(20, TimeUnit.SECONDS);
            byte[] body = reversed(pattern(Integer.parseInt(args[i])));
            ByteBuf want = Unpooled.buffer();
            writeFrame(want, 8, body);
            byte[] w = new byte[want.readableBytes()];
            want.readBytes(w);
            if (got == null || !java.util.Arrays.equals(got, w)) {
                System.out.println("FAIL reply " + (i - 2) + ": " + (got == null ? "none" : got.length + " bytes") + ", want " + w.length);
                ch.close();
                return 1;
            }
        }
        ch.close().sync();
        System.out.println("OK");
        return 0;
    }
}
