// EchoServer is a Netty echo server of framed's default wire format (a
// 4-byte little-endian length, then the payload), for running framedspec
// against a server that is not written in Go. It is not part of CI.
//
//	CP=/usr/share/java/netty-all.jar   # Debian: apt-get install libnetty-java openjdk-17-jdk-headless
//	javac -cp $CP -d /tmp/netty-echo EchoServer.java
//	java -cp $CP:/tmp/netty-echo EchoServer 127.0.0.1 9000 4194304 &
//	go run ./cmd/framedspec 127.0.0.1:9000
//
// It passes every case. The two lines marked "framedspec" are what the
// plain way of writing it gets wrong: passing the payload limit to the
// decoder as is (Netty's limit counts the 4 header bytes, so a frame of
// exactly the limit is refused: case 1.5), and closing at once on a bad
// length (the replies to the frames decoded before it are still waiting
// for channelReadComplete's flush and are dropped: cases 3.1, 3.2, 4.3).
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.*;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.LengthFieldPrepender;
import java.nio.ByteOrder;

public final class EchoServer {
    public static void main(String[] args) throws Exception {
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        int max = Integer.parseInt(args[2]);
        EventLoopGroup boss = new NioEventLoopGroup(1), workers = new NioEventLoopGroup();
        try {
            ServerBootstrap b = new ServerBootstrap().group(boss, workers)
                .channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(
                            new LengthFieldBasedFrameDecoder(ByteOrder.LITTLE_ENDIAN, max + 4, 0, 4, 0, 4, true), // framedspec 1.5: the limit counts the header
                            new LengthFieldPrepender(ByteOrder.LITTLE_ENDIAN, 4, 0, false),
                            new ChannelInboundHandlerAdapter() {
                                @Override public void channelRead(ChannelHandlerContext ctx, Object msg) {
                                    ctx.write(msg); // the frame's payload; the prepender adds its length
                                }
                                @Override public void channelReadComplete(ChannelHandlerContext ctx) {
                                    ctx.flush();
                                }
                                @Override public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                                    // A bad or too large length: the stream is unusable. Send
                                    // the replies owed, then close (framedspec 3.1, 3.2).
                                    ctx.flush();
                                    ctx.close();
                                }
                            });
                    }
                });
            Channel ch = b.bind(host, port).sync().channel();
            System.out.println("listening on " + host + ":" + port);
            ch.closeFuture().sync();
        } finally {
            boss.shutdownGracefully();
            workers.shutdownGracefully();
        }
    }
}
