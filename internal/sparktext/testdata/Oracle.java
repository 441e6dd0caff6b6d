// Oracle prints values the way the JVM (and so Spark) prints them, for
// sparktext's interop test. Run in source-file mode: java Oracle.java.
// The first output line is the JDK's feature version; then, for each input
// line, one output line:
//
//   d HEXBITS        Double.toString(Double.longBitsToDouble(HEXBITS))
//   cast US ZONE     Spark's CAST(timestamp AS STRING) in ZONE
//   write US ZONE    Spark's JSON/CSV writer default timestampFormat in ZONE
//   date DAYS        Spark's date format (yyyy-MM-dd, y as java.time's u)
//
// US is microseconds since the epoch.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.temporal.ChronoField;
import java.util.Locale;

public class Oracle {
    // Spark's DateTimeFormatterHelper.fractionFormatter (cast to string).
    static final DateTimeFormatter CAST = new DateTimeFormatterBuilder()
        .append(DateTimeFormatter.ISO_LOCAL_DATE)
        .appendLiteral(' ')
        .appendValue(ChronoField.HOUR_OF_DAY, 2).appendLiteral(':')
        .appendValue(ChronoField.MINUTE_OF_HOUR, 2).appendLiteral(':')
        .appendValue(ChronoField.SECOND_OF_MINUTE, 2)
        .appendFraction(ChronoField.NANO_OF_SECOND, 0, 9, true)
        .toFormatter(Locale.US);
    // yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX] after Spark turns y into u.
    static final DateTimeFormatter WRITE = new DateTimeFormatterBuilder()
        .appendPattern("uuuu-MM-dd'T'HH:mm:ss[.SSS][XXX]").toFormatter(Locale.US);
    static final DateTimeFormatter DATE = new DateTimeFormatterBuilder()
        .appendPattern("uuuu-MM-dd").toFormatter(Locale.US);

    static Instant instant(String us) {
        long v = Long.parseLong(us);
        return Instant.ofEpochSecond(Math.floorDiv(v, 1_000_000L), Math.floorMod(v, 1_000_000L) * 1000);
    }

    public static void main(String[] args) throws Exception {
        System.out.println(Runtime.version().feature());
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        StringBuilder out = new StringBuilder();
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.split(" ");
            switch (f[0]) {
                case "d":
                    out.append(Double.toString(Double.longBitsToDouble(Long.parseUnsignedLong(f[1], 16))));
                    break;
                case "cast":
                    out.append(CAST.withZone(ZoneId.of(f[2])).format(instant(f[1])));
                    break;
                case "write":
                    out.append(WRITE.withZone(ZoneId.of(f[2])).format(instant(f[1])));
                    break;
                case "date":
                    out.append(DATE.format(LocalDate.ofEpochDay(Long.parseLong(f[1]))));
                    break;
                default:
                    throw new IllegalArgumentException("bad line: " + line);
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
