// What the board's two scripts share through the page (chart.js defines it, board.js uses it).
interface Window {
  CrsChart: {
    render: (...args: unknown[]) => unknown;
    axisTicks: (...args: unknown[]) => { t: number; time: string; day: string }[];
    o2Text: (...args: unknown[]) => string;
    setDeviceNames: (names: Record<string, string> | undefined) => void;
    pressorText: (...args: unknown[]) => string;
    COLORS: Record<string, string>;
  };
}
